"""--mode=export: the trained (or given) model as a versioned SavedModel for TF Serving."""

from kaleido_tf.apps import runner


def run_export(task, flags):
    from kaleido_tf.export import export_saved_model

    export_dir = flags.export_dir or (flags.output_dir and f"{flags.output_dir}/export")
    if not export_dir:
        raise runner.UsageError("--export_dir (or --output_dir) is required for --mode=export")
    model = runner.build_for_prediction(task, flags)
    label_map = None
    if getattr(task, "class_names", None):
        label_map = {name: i for i, name in enumerate(task.class_names)}
    path = export_saved_model(model, export_dir, vocab_file=flags.vocab_file, label_map=label_map)
    runner.say(f"exported {path}")
    return path
