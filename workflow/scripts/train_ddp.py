"""torchrun entry of a multi-GPU training job: python -m torch.distributed.run ... train_ddp.py SPEC.json"""

import sys

from hcrlc.jobs import run_ddp_entry

if __name__ == "__main__":
    run_ddp_entry(sys.argv)
