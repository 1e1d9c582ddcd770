# Formats a host file as a FAT volume with MicroPython's own FatFs (run by the unix port).
import sys
import vfs


class FileBlockDevice:
    def __init__(self, f, blocks):
        self.f = f
        self.blocks = blocks

    def readblocks(self, n, buf):
        self.f.seek(n * 512)
        self.f.readinto(buf)

    def writeblocks(self, n, buf):
        self.f.seek(n * 512)
        self.f.write(buf)

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return 512
        return 0


with open(sys.argv[1], "r+b") as f:
    f.seek(0, 2)
    vfs.VfsFat.mkfs(FileBlockDevice(f, f.tell() // 512))
