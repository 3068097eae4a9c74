// Public face of src/config: the settings table and the loader.
export { SETTINGS, envNameOf, type SettingName, type SettingSpec, type SettingValue, type DefaultedSetting } from './settings.ts';
export { loadSettings, formatHelp, type Settings, type CommandOptions, type Loaded } from './load.ts';
export { readSettingFile } from './read_file.ts';
