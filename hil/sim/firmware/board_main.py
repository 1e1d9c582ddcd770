# Main script of the virtual board's interpreter. The firmware lives in its own module so that
# the REPL's namespace (this __main__) starts empty, as on a board.
import hilfw

hilfw.Firmware().run()
