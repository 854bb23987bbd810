from datetime import timedelta

from django.apps import AppConfig

#: How often the dispatcher fans the Amazon syncs out to every active tenant.
LISTINGS_SYNC_EVERY = timedelta(minutes=60)
OFFERS_SYNC_EVERY = timedelta(minutes=5)
ORDERS_SYNC_EVERY = timedelta(minutes=10)
FINANCES_SYNC_EVERY = timedelta(minutes=60)
#: Offer snapshots past OFFER_SNAPSHOT_RETENTION_DAYS are deleted once a day (00:00 UTC).
OFFER_SNAPSHOT_RETENTION_EVERY = timedelta(days=1)


class AmazonConfig(AppConfig):
    name = "amazon"
    verbose_name = "Amazon connections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenants.jobs import register_periodic

        register_periodic("amazon.sync_listings", "amazon.sync_listings_all", LISTINGS_SYNC_EVERY)
        register_periodic("amazon.sync_offers", "amazon.sync_offers_all", OFFERS_SYNC_EVERY)
        register_periodic("amazon.sync_orders", "amazon.sync_orders_all", ORDERS_SYNC_EVERY)
        register_periodic(
            "amazon.sync_financial_events", "amazon.sync_financial_events_all", FINANCES_SYNC_EVERY
        )
        register_periodic(
            "amazon.offer_snapshot_retention", "amazon.purge_offer_snapshots", OFFER_SNAPSHOT_RETENTION_EVERY
        )
