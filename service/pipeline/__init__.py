"""From a decoded request to device results: handler, scheduler, device runner."""
