"""Builds a Verilog design with Icarus through cocotb's runner and runs one cocotb test module.

usage: run.py BUILD_DIR TOP TEST_MODULE SOURCE.v...   (the test reads $AF_VECTORS)
Exit status 0 only when every test passed.
"""

import os
import sys

from cocotb_tools.runner import get_results, get_runner


def main():
    build_dir, top, test_module, *sources = sys.argv[1:]
    runner = get_runner("icarus")
    runner.build(
        sources=sources,
        hdl_toplevel=top,
        build_dir=build_dir,
        timescale=("1ns", "1ps"),
        always=True,
    )
    results = runner.test(
        hdl_toplevel=top,
        test_module=test_module,
        test_dir=os.path.dirname(os.path.abspath(__file__)),
        build_dir=build_dir,
        # Results beside the build, never in the source tree.
        results_xml=os.path.join(os.path.abspath(build_dir), "results.xml"),
    )
    total, failed = get_results(results)
    print(f"cocotb: {total} test(s), {failed} failed")
    return 1 if failed or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
