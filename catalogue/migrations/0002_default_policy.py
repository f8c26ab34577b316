"""The default approval policy: that of the production process Greenlight ships with."""

from django.db import migrations

from catalogue import defaults


def forward(apps, schema_editor):
    ApprovalPolicy = apps.get_model("catalogue", "ApprovalPolicy")
    ApprovalPolicy.objects.get_or_create(
        name="Production process (default)",
        defaults={
            "min_approvals": defaults.APPROVALS,
            "min_code_owner_approvals": defaults.CODE_OWNER_APPROVALS,
            "required_sign_offs": defaults.sign_offs(),
            "checks_must_pass": True,
            "reminder_after_hours": defaults.REMINDER_AFTER_HOURS,
            "checklist": defaults.checklist(),
        },
    )


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0001_initial")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
