from purchase_matcher.cli import main

raise SystemExit(main())
