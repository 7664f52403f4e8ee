from rlhf_mech.cli import app

app(prog_name="rlhf-mech")
