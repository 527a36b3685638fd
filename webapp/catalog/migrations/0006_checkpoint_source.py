from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_experiment_source_job")]

    operations = [
        migrations.AddField(
            model_name="checkpoint",
            name="source",
            field=models.CharField(
                choices=[("builtin", "Built-in"), ("huggingface", "Hugging Face"), ("lora", "LoRA"), ("onnx", "ONNX")],
                default="builtin", max_length=12,
            ),
        ),
        migrations.AddField(
            model_name="checkpoint",
            name="model_info",
            field=models.JSONField(blank=True, default=dict, help_text="Architecture, model type, head, input kind."),
        ),
    ]
