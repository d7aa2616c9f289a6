from customer_api.cli import main

raise SystemExit(main())
