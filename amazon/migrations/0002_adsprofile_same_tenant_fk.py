"""Database-level guard: an Ads profile's connection belongs to the profile's tenant.

PostgreSQL checks foreign keys without row-level security, so a plain FK on `connection_id` would
accept another tenant's connection. A composite FK on (tenant_id, connection_id) cannot.
"""

from django.db import migrations

FORWARD = [
    "ALTER TABLE amazon_sellerconnection ADD CONSTRAINT amazon_sellerconnection_tenant_row UNIQUE (tenant_id, id)",
    "ALTER TABLE amazon_adsprofile ADD CONSTRAINT amazon_adsprofile_connection_same_tenant"
    " FOREIGN KEY (tenant_id, connection_id) REFERENCES amazon_sellerconnection (tenant_id, id)"
    " ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
]
BACKWARD = [
    "ALTER TABLE amazon_adsprofile DROP CONSTRAINT amazon_adsprofile_connection_same_tenant",
    "ALTER TABLE amazon_sellerconnection DROP CONSTRAINT amazon_sellerconnection_tenant_row",
]


class Migration(migrations.Migration):
    dependencies = [("amazon", "0001_initial")]

    operations = [
        migrations.RunSQL(sql=FORWARD[0], reverse_sql=BACKWARD[1]),
        migrations.RunSQL(sql=FORWARD[1], reverse_sql=BACKWARD[0]),
    ]
