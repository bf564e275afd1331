from facade.cli import main

main()
