from recall_intake.cli import main

raise SystemExit(main())
