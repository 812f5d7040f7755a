from meddl.cli import main

main()
