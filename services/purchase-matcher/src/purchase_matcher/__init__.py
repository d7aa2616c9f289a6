"""purchase-matcher: joins recalls with order history and emits one alert per affected customer
(port 8002)."""
