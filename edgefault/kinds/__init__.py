"""Model kinds (bundle ``model.kind``): the device model of each kind."""
