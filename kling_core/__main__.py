from kling_core.cli import main

main()
