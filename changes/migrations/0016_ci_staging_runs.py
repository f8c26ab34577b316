import re

import django.core.validators
from django.db import migrations, models

HEX = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def commit_from_version(apps, schema_editor):
    """Runs recorded before their commit was kept: a version that is a full commit id is one; any
    other soaks nothing (the soak follows commits now)."""
    StagingRun = apps.get_model("changes", "StagingRun")
    for run in StagingRun.objects.all().only("id", "version"):
        commit = run.version.strip().lower()
        StagingRun.objects.filter(pk=run.pk).update(commit=commit if HEX.fullmatch(commit) else "")


class Migration(migrations.Migration):
    dependencies = [("changes", "0015_approvals_on_commits")]

    operations = [
        migrations.RemoveField(model_name="changerequest", name="build"),
        migrations.AddField(
            model_name="stagingrun",
            name="commit",
            field=models.CharField(
                default="",
                help_text="The commit that ran.",
                max_length=64,
                validators=[
                    django.core.validators.RegexValidator(
                        "^(?:[0-9a-f]{40}|[0-9a-f]{64})$", "Give the full commit id (40 hex digits)."
                    )
                ],
            ),
            preserve_default=False,
        ),
        migrations.RunPython(commit_from_version, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="stagingrun",
            name="version",
            field=models.CharField(help_text="What CI calls it (a build, a tag), for people.", max_length=100),
        ),
        migrations.AddIndex(
            model_name="stagingrun",
            index=models.Index(fields=["commit", "at"], name="staging_run_commit_idx"),
        ),
    ]
