; Inno Setup 6 script: a per-user install (no admin rights), Start-menu entry, optional start at
; login, and an uninstaller that keeps the backups and says where they are.
#define AppName "Desktop Backup"
#define AppVersion "0.1.0"
#define AppExe "desktop-backup.exe"
; The same program with a console: the window app cannot print (--self-check, the CLI).
#define CliExe "desktop-backup-cli.exe"

[Setup]
AppId={{6F1D2E7A-4B8C-4E0B-9B77-D35A2C1B0E41}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=Desktop Backup
DefaultDirName={localappdata}\Programs\{#AppName}
DefaultGroupName={#AppName}
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
OutputDir=..\..\dist
OutputBaseFilename=DesktopBackup-Setup-{#AppVersion}
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
UninstallDisplayIcon={app}\{#AppExe}
DisableProgramGroupPage=yes

[Files]
Source: "..\..\dist\desktop-backup\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion

[Tasks]
Name: "startatlogin"; Description: "Start Desktop Backup when I log in (runs the day's backup)"; Flags: unchecked
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; Flags: unchecked

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"; Parameters: "gui"
Name: "{group}\{#AppName} self-check"; Filename: "{cmd}"; Parameters: "/k ""{app}\{#CliExe}"" --self-check"
Name: "{userdesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Parameters: "gui"; Tasks: desktopicon
Name: "{userstartup}\{#AppName}"; Filename: "{app}\{#AppExe}"; Parameters: "gui"; Tasks: startatlogin

[Run]
Filename: "{app}\{#AppExe}"; Parameters: "gui"; Description: "Open {#AppName} now"; Flags: nowait postinstall skipifsilent

[Code]
// The backups live in the user's data folder, outside {app}: the uninstaller never touches
// them, and says so, with the path, so a shop owner knows where yesterday's data is.
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usPostUninstall then
    MsgBox('Desktop Backup is removed. Your backups were kept in:' + #13#10 +
           ExpandConstant('{localappdata}\DesktopBackup\backups') + #13#10 +
           '(or the backup folder chosen in the settings). Delete them yourself if you no longer need them.',
           mbInformation, MB_OK);
end;
