from selfhost.cli.main import main

raise SystemExit(main())
