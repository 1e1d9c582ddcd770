# Imports sdcard_helper (which mounts the card, or its stand-in) and counts what is stored there.
import os

import sdcard_helper

sdcard_helper.mount()
if sdcard_helper.BACKEND == "state":
    count = 0  # a stand-in without a filesystem (firmware that cannot mount one) stores nothing
else:
    count = len(os.listdir(sdcard_helper.config.SD_MOUNT_POINT))
