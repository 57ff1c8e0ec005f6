"""The arguments both sides of the oracle take (each runs in its own virtualenv)."""
import argparse


def parser(commands) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=list(commands))
    p.add_argument("--model", required=True, help="the original's model flags")
    p.add_argument("--flags", default="", help="the original's train.py flags of the case")
    p.add_argument("--eval", default="", help="the original's eval.py flags (forward)")
    p.add_argument("--tag", default="single")
    p.add_argument("--out", required=True)
    p.add_argument("--crop", type=int, default=129)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="the init's random seed (original)")
    p.add_argument("--weight_decay", type=float, default=4e-5)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--dropout", type=int, default=0)
    return p
