# Module-level settings shared by every importer: one module object, one set of values.
SD_MOUNT_POINT = "/sd"
LOG_LEVEL = "info"
RETRIES = 3
