from kaleido_tf.apps.serve.cli import run

run()
