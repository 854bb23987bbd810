"""Dashboard pages for repricing under /repricing/ (included by config/urls.py; namespace `repricing`).

Reading pages need `view_dashboard`; every change is its own POST route needing `change_automation`."""

from django.urls import path

from repricing import tools_views, views

app_name = "repricing"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("kill-switch/", views.kill_switch, name="kill_switch"),
    path("settings/", views.settings_update, name="settings"),
    path("rules/", views.rule_list, name="rules"),
    path("rules/new/", views.rule_create, name="rule_create"),
    path("rules/<uuid:public_id>/", views.rule_edit, name="rule_edit"),
    path("rules/<uuid:public_id>/active/", views.rule_toggle, name="rule_toggle"),
    path("rules/<uuid:public_id>/delete/", views.rule_delete, name="rule_delete"),
    path("tags/", views.tag_rules, name="tag_rules"),
    path("tags/new/", views.tag_rule_create, name="tag_rule_create"),
    path("tags/<uuid:public_id>/delete/", views.tag_rule_delete, name="tag_rule_delete"),
    path("skus/", views.sku_list, name="skus"),
    path("skus/bulk/", views.sku_bulk, name="sku_bulk"),
    path("skus/<uuid:public_id>/", views.sku_detail, name="sku_detail"),
    path("skus/<uuid:public_id>/edit/", views.sku_edit, name="sku_edit"),
    path("skus/<uuid:public_id>/reprice/", views.sku_reprice, name="sku_reprice"),
    path("activity/", views.activity, name="activity"),
    # Tools: SKU pricing from a CSV file, backtests (repricing/tools_views.py)
    path("bounds/import/", tools_views.bounds_import, name="bounds_import"),
    path("bounds/import/<uuid:public_id>/", tools_views.bounds_import_detail, name="bounds_import_detail"),
    path(
        "bounds/import/<uuid:public_id>/apply/", tools_views.bounds_import_apply, name="bounds_import_apply"
    ),
    path(
        "bounds/import/<uuid:public_id>/errors.csv",
        tools_views.bounds_import_errors,
        name="bounds_import_errors",
    ),
    path("bounds/export.csv", tools_views.bounds_export, name="bounds_export"),
    path("backtests/", tools_views.backtest_list, name="backtests"),
    path("backtests/new/", tools_views.backtest_new, name="backtest_new"),
    path("backtests/<uuid:public_id>/", tools_views.backtest_detail, name="backtest_detail"),
]
