"""Keep each ledger row's stream entry as numbers too, so that the upsert compares it in SQL."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

#: Rows read and written per step while filling the new columns.
CHUNK = 2000


def fill_ledger_order(apps: Any, schema_editor: Any) -> None:
    """Set ``ledger_ms``/``ledger_seq`` of the rows written before from their ``ledger_entry``."""
    records = apps.get_model("queue_app", "JobRecord").objects.using(schema_editor.connection.alias)
    last = 0
    while chunk := list(records.filter(pk__gt=last).order_by("pk")[:CHUNK]):
        for record in chunk:
            ms, _, seq = record.ledger_entry.partition("-")
            if ms.isdigit() and (seq.isdigit() or not seq):
                record.ledger_ms, record.ledger_seq = int(ms), int(seq or 0)
        records.bulk_update(chunk, ["ledger_ms", "ledger_seq"])
        last = chunk[-1].pk


class Migration(migrations.Migration):
    dependencies = (("queue_app", "0006_admin_list_indexes"),)

    operations = (
        migrations.AddField(
            model_name="jobrecord",
            name="ledger_ms",
            field=models.BigIntegerField(default=-1),
        ),
        migrations.AddField(
            model_name="jobrecord",
            name="ledger_seq",
            field=models.BigIntegerField(default=-1),
        ),
        migrations.RunPython(fill_ledger_order, migrations.RunPython.noop, elidable=True),
    )
