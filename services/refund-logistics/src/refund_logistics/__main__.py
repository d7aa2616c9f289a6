from refund_logistics.cli import main

raise SystemExit(main())
