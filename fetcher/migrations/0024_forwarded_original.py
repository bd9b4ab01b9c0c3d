"""A forward carries its original: the quoted text and sanitised HTML below what was written, and
which part of the original each copied attachment was (so the forward's page can offer to remove
it before the draft exists). Empty for every draft made before."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fetcher", "0023_thread_key_distinct")]

    operations = [
        migrations.AddField(
            model_name="outgoingattachment",
            name="forwarded_part",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="outgoingmessage",
            name="forwarded_html",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="outgoingmessage",
            name="forwarded_text",
            field=models.TextField(blank=True),
        ),
    ]
