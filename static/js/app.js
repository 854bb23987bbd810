/* SellerPilot dashboard: progressive enhancement only — every page works without this file.
 *
 * - Dashboard bearer token: on each dashboard page (body[data-token-url]) POST /session/token with the
 *   CSRF token and keep {token, expiresAt} in sessionStorage (never localStorage), so API calls send
 *   `Authorization: Bearer …`. sessionStorage dies with the tab; the server revokes tokens at logout.
 * - Logout (form[data-logout]) and any signed-out page clear the token.
 * - Copy buttons, confirm prompts, the small-screen menu toggle, Escape to close <details> menus.
 * Loaded with `defer` from /static (strict nonce CSP: no inline scripts, no third parties).
 */
(function () {
  "use strict";

  var TOKEN_KEY = "sellerpilot.dashboardToken";
  var body = document.body;
  document.documentElement.classList.add("js");

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function clearToken() {
    try {
      window.sessionStorage.removeItem(TOKEN_KEY);
    } catch (error) {
      /* storage disabled: nothing to clear */
    }
  }

  function storedToken() {
    try {
      var record = JSON.parse(window.sessionStorage.getItem(TOKEN_KEY) || "null");
      if (record && record.token && record.expiresAt > Date.now() + 5000) {
        return record.token;
      }
    } catch (error) {
      /* unreadable: fetch a new one */
    }
    return null;
  }

  function fetchToken() {
    var url = body.getAttribute("data-token-url");
    if (!url) {
      return Promise.reject(new Error("This page has no dashboard session."));
    }
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) {
          clearToken();
          throw new Error("Could not get a session token (" + response.status + ").");
        }
        return response.json();
      })
      .then(function (data) {
        // Idle expiry is renewed server-side on use; refresh a little early client-side.
        var record = { token: data.token, expiresAt: Date.now() + data.expires_in * 1000 };
        window.sessionStorage.setItem(TOKEN_KEY, JSON.stringify(record));
        return data.token;
      });
  }

  /** Call the REST API with the dashboard token; one retry with a fresh token on 401. */
  function api(path, options) {
    options = options || {};
    function send(token) {
      var headers = new Headers(options.headers || {});
      headers.set("Authorization", "Bearer " + token);
      headers.set("Accept", "application/json");
      return fetch(path, Object.assign({}, options, { headers: headers, credentials: "omit" }));
    }
    var token = storedToken();
    var first = token ? Promise.resolve(token) : fetchToken();
    return first.then(send).then(function (response) {
      if (response.status !== 401) {
        return response;
      }
      clearToken();
      return fetchToken().then(send);
    });
  }

  window.SellerPilot = { api: api, refreshToken: fetchToken, clearToken: clearToken };

  // --- Token lifecycle -----------------------------------------------------------------------------
  if (body.getAttribute("data-authenticated") !== "true") {
    clearToken();
  } else if (body.hasAttribute("data-token-url")) {
    fetchToken()
      .then(function () {
        var me = document.querySelector("[data-api-me]");
        if (!me) {
          return null;
        }
        return api("/api/v1/me").then(function (response) {
          if (!response.ok) {
            return null;
          }
          return response.json().then(function (data) {
            var role = data.role;
            var name = data.user && (data.user.full_name || data.user.email);
            if (name && role) {
              me.textContent = "Signed in as " + name + " · " + role;
              me.hidden = false;
            }
          });
        });
      })
      .catch(function () {
        /* The page is fully usable without the API. */
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) {
      return;
    }
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    if (form.hasAttribute("data-logout")) {
      clearToken();
    }
  });

  // --- Copy buttons ------------------------------------------------------------------------------
  document.querySelectorAll("[data-copy-target]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy-target"));
      if (!source) {
        return;
      }
      var text = source.textContent.replace(/\s+/g, source.id === "totp-secret" ? "" : " ").trim();
      var label = button.textContent;
      var done = function (message) {
        button.textContent = message;
        window.setTimeout(function () {
          button.textContent = label;
        }, 2000);
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(
          function () {
            done("Copied");
          },
          function () {
            done("Select and copy it");
          }
        );
      } else {
        var range = document.createRange();
        range.selectNodeContents(source);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        done("Selected — press Ctrl+C");
      }
    });
  });

  // --- Small-screen menu ----------------------------------------------------------------------
  var toggle = document.querySelector("[data-nav-toggle]");
  var nav = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
  if (toggle && nav) {
    toggle.hidden = false;
    nav.setAttribute("data-collapsed", "true");
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") === "true";
      toggle.setAttribute("aria-expanded", open ? "false" : "true");
      nav.setAttribute("data-collapsed", open ? "true" : "false");
    });
  }

  // --- <details> menus: Escape closes and returns focus; a click elsewhere closes. -----------------
  var menus = document.querySelectorAll("details[data-menu]");
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    menus.forEach(function (menu) {
      if (menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  });
  document.addEventListener("click", function (event) {
    menus.forEach(function (menu) {
      if (menu.open && !menu.contains(event.target)) {
        menu.open = false;
      }
    });
  });
})();
