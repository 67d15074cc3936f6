"""``pattnet models``: the architectures one can train, and the model that ships inside pattnet.

Says what the bundled model was trained on, which AUs it reports and at which thresholds, and
what was measured on held-out synthetic identities and on real faces, so that a user knows what
``pattnet detect`` without ``--model`` gives before trusting it.
"""

from __future__ import annotations

import argparse

HELP = "list the model architectures and describe the bundled model (training data, results)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the bundled model's description as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from pattnet.checkpoint import bundled_model_about, bundled_model_path
    from pattnet.models import describe_models

    about = bundled_model_about()
    if args.json:
        print(json.dumps(about, indent=2))
        return 0
    print("architectures (pattnet train --model NAME):")
    for name, desc in describe_models().items():
        print(f"  {name:20s} {desc}")
    print(f"\nbundled model (pattnet detect without --model): {bundled_model_path()}")
    for line in about.get("summary", ["(no description recorded)"]):
        print(f"  {line}")
    return 0
