# Imports sdcard_helper (which mounts the card) and counts what is on the card.
import os

import sdcard_helper

sdcard_helper.mount()
count = len(os.listdir(sdcard_helper.config.SD_MOUNT_POINT))
