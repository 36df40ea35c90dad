from border.cli import app

app(prog_name="border")
