"""A nameko timer whose interval is a setting, read when the service starts (nameko's own
`@timer` takes its interval when the class is defined)."""
import os

from nameko.timer import Timer


class ConfiguredTimer(Timer):
    """`@configured_timer("SETTING", default)`: every SETTING seconds, from the service's
    config, else the environment, else `default`."""

    def __init__(self, setting, default, **kwargs):
        self.setting = setting
        self.default = default
        super().__init__(interval=default, **kwargs)

    def setup(self):
        value = self.container.config.get(self.setting)
        if value in (None, ""):
            value = os.environ.get(self.setting) or self.default
        self.interval = float(value)


configured_timer = ConfiguredTimer.decorator
