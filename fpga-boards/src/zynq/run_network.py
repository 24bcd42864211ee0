"""Runs the network on inputs from a .npy file and prints its outputs (and top-1 accuracy).

    python3 run_network.py X.npy [--labels L.npy] [--out Y.npy] [--limit N]

X is float32 with the batch on its first axis; Y gets one float32 row per input.
"""
import argparse

import numpy as np

from network import Network


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", help="float32 .npy, batch on the first axis")
    ap.add_argument("--labels", help="class labels .npy, one per input")
    ap.add_argument("--out", help="write the outputs here (.npy)")
    ap.add_argument("--limit", type=int, help="run only the first N inputs")
    args = ap.parse_args()
    x = np.load(args.inputs)
    if args.limit is not None:
        x = x[: args.limit]
    net = Network()
    y = net.run(x)
    if args.out:
        np.save(args.out, y)
    for i, row in enumerate(y[:10]):
        print("%4d: %s -> %d" % (i, np.array2string(row, precision=4), int(np.argmax(row))))
    print("%d inputs, %d accelerator commands" % (len(y), net.commands))
    if args.labels:
        labels = np.load(args.labels)[: len(y)]
        print("accuracy: %.2f%% top-1" % (100.0 * float(np.mean(np.argmax(y, axis=1) == labels))))


if __name__ == "__main__":
    main()
