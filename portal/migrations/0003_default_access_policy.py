"""The default access policy: that of the production process Greenlight ships with."""

from django.db import migrations


def forward(apps, schema_editor):
    AccessPolicy = apps.get_model("portal", "AccessPolicy")
    AccessPolicy.objects.get_or_create(
        pk=1,
        defaults={
            "break_glass_minutes": 60,
            "api_token_max_days": 90,
            "announce_slack_channel": "#production-alerts",
            "announce_email": "ops@aifilmstudio.com",
        },
    )


class Migration(migrations.Migration):
    dependencies = [("portal", "0002_audit_append_only")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
