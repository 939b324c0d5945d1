"""The service layer: sequences commands through the engine and stores them before answering."""
