"""The demo's stage timer."""

import time


class Stages:
    """Times each stage and prints a banner."""

    def __init__(self):
        self.seconds = {}

    def __call__(self, name):
        stages = self

        class _Stage:
            def __enter__(self):
                print(f"\n=== {name} ===", flush=True)
                self.start = time.time()

            def __exit__(self, *exc):
                stages.seconds[name] = time.time() - self.start
                if exc[0] is None:
                    print(f"--- {name}: {stages.seconds[name]:.1f}s", flush=True)

        return _Stage()
