"""A throw-away redis-server for the tests and the benchmark (Debian's,
installed by scripts/setup.sh; never the system service)."""
import pathlib
import subprocess
import time

from dovecot_fixture import _free_ports, _listening_ports, for_line


REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"


class Redis:
    """A throw-away redis-server: loopback, a free port, nothing saved."""

    def __init__(self, tmpdir: pathlib.Path):
        self.dir = tmpdir
        self.port = _free_ports(1)[0]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if not pathlib.Path(REDIS_SERVER).exists():
            raise FileNotFoundError(f"{REDIS_SERVER} missing: run scripts/setup.sh")
        log = open(self.dir / "redis.log", "wb")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while self.port not in _listening_ports():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start: " +
                                   (self.dir / "redis.log").read_text())
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cli(self, *args: str) -> str:
        r = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port),
                            *args], capture_output=True, text=True, timeout=10,
                           check=True)
        return r.stdout.rstrip("\n")

    def dict_conf(self) -> tuple[dict, str]:
        """(plugin settings, extra config) naming this server's dict."""
        plugin = for_line({"rawlog_ext_control_dict":
                           f"redis:host=127.0.0.1:port={self.port}"}, {})
        extra = for_line("", f"rawlog_ext_control {{\n  dict redis {{\n"
                             f"    redis_host = 127.0.0.1\n"
                             f"    redis_port = {self.port}\n  }}\n}}\n")
        return plugin, extra
