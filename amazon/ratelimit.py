"""A shared token bucket per (seller connection, SP-API operation), in Redis, atomic across processes.

Amazon limits each (selling partner, application) pair per operation with a token bucket: `rate`
requests per second refill it up to `burst`. We keep the same bucket on our side so that every worker
of every process together stays inside it instead of discovering the limit through 429s.

- Seeded from Amazon's published usage plans (`OPERATION_LIMITS`, from ../shared/spapi-models/README.md).
- Adjusted when a response carries `x-amzn-RateLimit-Limit` (`observe_rate_limit`): the observed rate
  is stored in Redis for an hour, then the published one applies again.
- One Lua script does refill + take atomically, on Redis's own clock (TIME), so processes on
  different machines share one timeline. A caller willing to wait *reserves* its token (the bucket
  may go below zero) and sleeps exactly until it is due: waiters queue in order, nobody polls.
- A 429 empties the bucket (`record_throttle`) and is counted per connection for the dashboard
  (`quota_state`).
- Amazon Ads API operations (named `ads.<operationId>` by amazon/ads_clients.py) share the machinery.
  Amazon publishes no per-operation Ads limits (it throttles dynamically and answers 429 with
  `Retry-After`), so they are seeded per family (`ADS_FAMILY_LIMITS`: reads, writes, report requests)
  and adapt from the 429s themselves: `record_throttle(..., retry_after=s)` holds the bucket until
  Amazon's `Retry-After` and halves the operation's rate for `ADS_ADAPTED_RATE_SECONDS`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from uuid import uuid4

from config.redis import redis_client

logger = logging.getLogger(__name__)

#: operation -> (requests per second, burst), Amazon's default usage plans.
OPERATION_LIMITS: dict[str, tuple[float, int]] = {
    # Product Pricing v0
    "getPricing": (0.5, 1),
    "getCompetitivePricing": (0.5, 1),
    "getListingOffers": (1, 2),
    "getItemOffers": (0.5, 1),
    "getItemOffersBatch": (0.1, 1),
    "getListingOffersBatch": (0.5, 1),
    # Product Pricing 2022-05-01
    "getFeaturedOfferExpectedPriceBatch": (0.033, 1),
    "getCompetitiveSummary": (0.033, 1),
    # Listings Items 2021-08-01
    "getListingsItem": (5, 10),
    "patchListingsItem": (5, 5),
    "putListingsItem": (5, 10),
    "deleteListingsItem": (5, 5),
    "searchListingsItems": (5, 5),
    # FBA Inventory v1
    "getInventorySummaries": (2, 2),
    # Orders v0
    "getOrders": (0.0167, 20),
    "getOrder": (0.5, 30),
    "getOrderItems": (0.5, 30),
    "getOrderAddress": (0.5, 30),
    "getOrderBuyerInfo": (0.5, 30),
    # Reports 2021-06-30
    "createReport": (0.0167, 15),
    "getReport": (2, 15),
    "getReports": (0.0222, 10),
    "getReportDocument": (0.0167, 15),
    # Feeds 2021-06-30
    "createFeed": (0.0083, 15),
    "createFeedDocument": (0.5, 15),
    "getFeed": (2, 15),
    "getFeedDocument": (0.0222, 10),
    "getFeeds": (0.0222, 10),
    # Notifications v1: every operation 1/5
    "getSubscription": (1, 5),
    "createSubscription": (1, 5),
    "getSubscriptionById": (1, 5),
    "deleteSubscriptionById": (1, 5),
    "getDestinations": (1, 5),
    "createDestination": (1, 5),
    "getDestination": (1, 5),
    "deleteDestination": (1, 5),
    # Finances v0 0.5/30, 2024-06-19 listTransactions 0.5/10
    "listFinancialEventGroups": (0.5, 30),
    "listFinancialEventsByGroupId": (0.5, 30),
    "listFinancialEventsByOrderId": (0.5, 30),
    "listFinancialEvents": (0.5, 30),
    "listTransactions": (0.5, 10),
    # Tokens, Sellers
    "createRestrictedDataToken": (1, 10),
    "getMarketplaceParticipations": (0.016, 15),
}
#: Amazon Ads API operation families -> (requests per second, burst). Amazon publishes no Ads limits per
#: operation, so these are our conservative seeds (the simulator, like Amazon's observed behaviour, allows
#: about 10/s per advertiser over every call): reads (GET, `.../list`, profiles), writes (create, update,
#: delete: up to 1,000 entities per call, so few calls), report requests (a report takes minutes anyway).
ADS_FAMILY_LIMITS: dict[str, tuple[float, int]] = {
    "read": (5.0, 10),
    "write": (2.0, 5),
    "report": (0.2, 5),
}
ADS_PREFIX = "ads."
#: After an Ads 429 the operation runs at half its rate (once per Retry-After window, never below
#: 1/ADS_MIN_RATE_DIVISOR of its seed) until this long after the last 429, then the seed applies again
#: (Amazon's Ads limits move with its load: a quiet spell is the only signal that they went up again).
ADS_ADAPTED_RATE_SECONDS = 300
ADS_MIN_RATE_DIVISOR = 20
#: A Retry-After window shorter than this still counts as one (the 429s of one storm are one signal).
ADS_SLOW_DOWN_MIN_SECONDS = 1.0
#: For an operation missing from the table: Amazon's most common strict plan.
DEFAULT_LIMIT: tuple[float, int] = (0.5, 1)
#: How long an observed `x-amzn-RateLimit-Limit` overrides the published rate.
OBSERVED_RATE_SECONDS = 3600
#: The window of "recent" throttling shown to the seller.
THROTTLE_WINDOW_SECONDS = 3600

# KEYS: bucket, observed rate, operations set. ARGV: published rate, burst, operation, cost, max wait.
# Returns {granted (0/1), wait seconds, tokens left, rate} (numbers as strings: Lua would truncate).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(redis.call('GET', KEYS[2]) or ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then tokens = burst; ts = now end
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate) end
local wait = 0
local granted = 0
if tokens >= cost then
  granted = 1
else
  wait = (cost - tokens) / rate
  if wait <= max_wait then granted = 1 end
end
if cost > 0 then
  if granted == 1 then tokens = tokens - cost end
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
  redis.call('SADD', KEYS[3], ARGV[3])
  redis.call('EXPIRE', KEYS[3], 86400)
end
return {granted, tostring(wait), tostring(tokens), tostring(rate)}
"""

# KEYS: bucket. Empties it (a 429 says Amazon's bucket is empty, whatever ours believed).
_DRAIN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or '0')
if tokens > 0 then tokens = 0 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return 1
"""


# KEYS: bucket, rate, slow-down marker. ARGV: seed rate, retry after (s), min rate, adapted-rate TTL (s),
# shortest window (ms).
# An Ads 429: halve the rate (once per Retry-After window: a storm of 429s is one signal, not N), then
# hold the bucket so that its next token is due when Amazon said (tokens = 1 - retry_after * rate).
_SLOW_DOWN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local retry_after = tonumber(ARGV[2])
local rate = tonumber(redis.call('GET', KEYS[2]) or ARGV[1])
local window_ms = math.max(tonumber(ARGV[5]), math.ceil(retry_after * 1000))
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', window_ms) then
  rate = math.max(tonumber(ARGV[3]), rate / 2)
  redis.call('SET', KEYS[2], tostring(rate), 'EX', tonumber(ARGV[4]))
end
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or '0')
tokens = math.min(tokens, 0, 1 - retry_after * rate)
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(rate)
"""


class Throttled(Exception):
    """No token for this operation within the caller's timeout. `retry_after` in seconds."""

    def __init__(self, operation: str, retry_after: float) -> None:
        super().__init__(f"{operation}: rate limit reached, next request possible in {retry_after:.2f}s")
        self.operation = operation
        self.retry_after = retry_after


_warned: set[str] = set()


def ads_family(operation: str) -> str:
    """The family of an Ads operation (`ads.listSponsoredProductsCampaigns` -> "read")."""
    name = operation.removeprefix(ADS_PREFIX)
    if name == "createAsyncReport" or (name.startswith("post:") and name.endswith(("/report", "/snapshot"))):
        return "report"
    if name.startswith(("list", "get")) or name.endswith("/list"):
        return "read"
    return "write"


def limits_for(operation: str) -> tuple[float, int]:
    if operation.startswith(ADS_PREFIX):
        return ADS_FAMILY_LIMITS[ads_family(operation)]
    limit = OPERATION_LIMITS.get(operation)
    if limit is None:
        if operation not in _warned:  # once per process and operation, not on every call
            _warned.add(operation)
            logger.warning("no published usage plan for %s; using %s", operation, DEFAULT_LIMIT)
        return DEFAULT_LIMIT
    return limit


def _ident(connection: object) -> str:
    return str(getattr(connection, "public_id", connection))


# `{connection}` is a Redis Cluster hash tag: every key of one connection lives in one slot.
def _bucket_key(conn: str, operation: str) -> str:
    return f"rl:{{{conn}}}:bucket:{operation}"


def _rate_key(conn: str, operation: str) -> str:
    return f"rl:{{{conn}}}:rate:{operation}"


def _ops_key(conn: str) -> str:
    return f"rl:{{{conn}}}:ops"


def _slow_key(conn: str, operation: str) -> str:
    return f"rl:{{{conn}}}:slow:{operation}"


def _throttle_key(conn: str) -> str:
    return f"rl:{{{conn}}}:429"


def _take(conn: str, operation: str, *, cost: int, max_wait: float) -> tuple[bool, float, float, float]:
    rate, burst = limits_for(operation)
    granted, wait, tokens, current_rate = redis_client().eval(
        _TAKE,
        3,
        _bucket_key(conn, operation),
        _rate_key(conn, operation),
        _ops_key(conn),
        str(rate),
        str(burst),
        operation,
        str(cost),
        str(max_wait),
    )
    return bool(int(granted)), float(wait), float(tokens), float(current_rate)


def acquire(connection: object, operation: str, timeout: float = 0.0) -> float:
    """Take one request's token for `operation` of `connection` (a SellerConnection or its public id),
    waiting up to `timeout` seconds for it. Returns the seconds waited; raises `Throttled` when the
    token would come later than that (nothing is taken then)."""
    conn = _ident(connection)
    granted, wait, _tokens, _rate = _take(conn, operation, cost=1, max_wait=max(timeout, 0.0))
    if not granted:
        raise Throttled(operation, retry_after=wait)
    if wait > 0:
        time.sleep(wait)
    return wait


def observe_rate_limit(connection: object, operation: str, header_value: str | None) -> None:
    """Adopt the rate Amazon announced in `x-amzn-RateLimit-Limit` for this connection and operation."""
    if not header_value:
        return
    try:
        rate = float(header_value.strip())
    except ValueError:
        return
    if not rate > 0 or rate > 1000:
        return
    redis_client().set(_rate_key(_ident(connection), operation), repr(rate), ex=OBSERVED_RATE_SECONDS)


def record_throttle(connection: object, operation: str, *, retry_after: float | None = None) -> None:
    """Amazon answered 429: empty our bucket and count the event for the dashboard.

    With `retry_after` (the Ads API's `Retry-After`; SP-API announces its rate in
    `x-amzn-RateLimit-Limit` instead) the bucket is held until then and the operation's rate is halved
    for ADS_ADAPTED_RATE_SECONDS: our seed was evidently above what Amazon allows right now."""
    conn = _ident(connection)
    client = redis_client()
    now = time.time()
    if retry_after is None:
        client.eval(_DRAIN, 1, _bucket_key(conn, operation))
    else:
        seed_rate, _burst = limits_for(operation)
        client.eval(
            _SLOW_DOWN,
            3,
            _bucket_key(conn, operation),
            _rate_key(conn, operation),
            _slow_key(conn, operation),
            str(seed_rate),
            str(max(float(retry_after), 0.0)),
            str(seed_rate / ADS_MIN_RATE_DIVISOR),
            str(ADS_ADAPTED_RATE_SECONDS),
            str(max(1, int(ADS_SLOW_DOWN_MIN_SECONDS * 1000))),
        )
    pipe = client.pipeline()
    pipe.zadd(_throttle_key(conn), {f"{operation}|{uuid4().hex}": now})
    pipe.zremrangebyscore(_throttle_key(conn), 0, now - THROTTLE_WINDOW_SECONDS)
    pipe.expire(_throttle_key(conn), THROTTLE_WINDOW_SECONDS)
    pipe.sadd(_ops_key(conn), operation)
    pipe.execute()


@dataclass(frozen=True)
class OperationQuota:
    operation: str
    tokens: float
    rate: float
    burst: int
    published_rate: float
    throttled_recently: int


@dataclass(frozen=True)
class QuotaState:
    operations: list[OperationQuota]
    throttled_recently: int  # 429s in the last THROTTLE_WINDOW_SECONDS


def quota_state(connection: object) -> QuotaState:
    """What the seller's dashboard shows: per operation used, tokens left, rate, burst, recent 429s."""
    conn = _ident(connection)
    client = redis_client()
    since = time.time() - THROTTLE_WINDOW_SECONDS
    events = [
        m.decode() if isinstance(m, bytes) else str(m)
        for m in client.zrangebyscore(_throttle_key(conn), since, "+inf")
    ]
    by_operation: dict[str, int] = {}
    for member in events:
        operation = member.split("|", 1)[0]
        by_operation[operation] = by_operation.get(operation, 0) + 1
    operations = sorted(
        (m.decode() if isinstance(m, bytes) else str(m)) for m in client.smembers(_ops_key(conn))
    )
    quotas = []
    for operation in operations:
        published_rate, burst = limits_for(operation)
        _granted, _wait, tokens, rate = _take(conn, operation, cost=0, max_wait=0)
        quotas.append(
            OperationQuota(
                operation=operation,
                tokens=round(tokens, 3),
                rate=rate,
                burst=burst,
                published_rate=published_rate,
                throttled_recently=by_operation.get(operation, 0),
            )
        )
    return QuotaState(operations=quotas, throttled_recently=len(events))
