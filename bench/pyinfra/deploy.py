"""The benchmark's job done by pyinfra: render the Kong template, restart Kong if it changed."""

from pyinfra import host
from pyinfra.operations import files, server

rendered = files.template(
    name="Render kong-simple.yml",
    src=host.data.bench_template,
    dest=host.data.kong_config_path,
    mode="640",
    jinja_env_kwargs={"trim_blocks": True, "lstrip_blocks": True},
    **host.data.template_vars,
)
server.shell(
    name="Restart Kong",
    commands=[f"docker restart {host.data.kong_container}"],
    _if=rendered.did_change,
)
