"""City simulator: road networks, readers, riders, thefts and an RF read model.

It emits the same bytes real readers send (through the gateway's own protocol encoders) and
keeps the ground truth to score routes against. It never imports the engine or the API.
"""
