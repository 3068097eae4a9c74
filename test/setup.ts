// Loaded before every test file: what the CLI entry point does once at start-up.
import 'reflect-metadata';
