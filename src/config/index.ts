// Public face of src/config: the settings table and the loader.
export { SETTINGS, envNameOf, type SettingName, type SettingSpec } from './settings.ts';
export { loadSettings, formatHelp, type Values, type CommandOptions, type Loaded } from './load.ts';
export { readSettingFile } from './read_file.ts';
