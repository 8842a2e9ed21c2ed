; Inno Setup 6 script: a per-user install (no admin rights), Start-menu entry, optional start at
; login, and an uninstaller that keeps the backups and says where they are.
; Build with installer\windows\build.ps1, which passes the version written in
; desktop_backup\__init__.py:  iscc /DAppVersion=<version> [/DSign] desktop-backup.iss
#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=<version> (build.ps1 does)
#endif
#define AppName "Desktop Backup"
#define AppExe "desktop-backup.exe"
; The same program with a console: the window app cannot print (--self-check, the CLI).
#define CliExe "desktop-backup-cli.exe"
; The named mutex the running console holds (desktop_backup/ui/single_instance.py).
#define AppMutexName "DesktopBackupConsole"

[Setup]
AppId={{6F1D2E7A-4B8C-4E0B-9B77-D35A2C1B0E41}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=Desktop Backup
VersionInfoVersion={#AppVersion}
; Per user, always: no "install for all users" choice, because {localappdata}, {userstartup}
; and {userdesktop} would then point at the elevating administrator's profile.
PrivilegesRequired=lowest
DefaultDirName={localappdata}\Programs\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
DisableDirPage=auto
; Setup and the uninstaller wait (or ask) while the console is running: no half-replaced app.
AppMutex={#AppMutexName}
CloseApplications=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=DesktopBackup-Setup-{#AppVersion}
SetupIconFile=desktop-backup.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
#ifdef Sign
; build.ps1 defines Sign and passes the sign tool (/Ssigntool=...) when a certificate is given.
SignTool=signtool
SignedUninstaller=yes
#endif

[InstallDelete]
; An upgrade replaces the bundled libraries wholesale: stale ones from the old version must
; not sit beside the new ones.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "..\..\dist\desktop-backup\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion

[Tasks]
Name: "startatlogin"; Description: "Open Desktop Backup when I sign in to Windows (log in there and the day's backup runs; it then keeps the scheduled backup on time)"; Flags: unchecked
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; Flags: unchecked

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"; Parameters: "gui"
; cmd /k strips the outermost quotes: the extra pair keeps paths with spaces, & or ( whole.
Name: "{group}\{#AppName} self-check"; Filename: "{cmd}"; Parameters: "/k """"{app}\{#CliExe}"" --self-check"""
Name: "{userdesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Parameters: "gui"; Tasks: desktopicon
Name: "{userstartup}\{#AppName}"; Filename: "{app}\{#AppExe}"; Parameters: "gui"; Tasks: startatlogin

[Run]
Filename: "{app}\{#AppExe}"; Parameters: "gui"; Description: "Open {#AppName} now"; Flags: nowait postinstall skipifsilent

[Code]
// The backups live in the user's data folder, outside {app}: the uninstaller never touches
// them, and says so, with the path, so a shop owner knows where yesterday's data is. A silent
// uninstall (/SILENT, /VERYSILENT) must not stop at a message box.
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if (CurUninstallStep = usPostUninstall) and not UninstallSilent() then
    MsgBox('Desktop Backup is removed. Your backups were kept in:' + #13#10 +
           ExpandConstant('{localappdata}\DesktopBackup\backups') + #13#10 +
           '(or the backup folder chosen in the settings). Delete them yourself if you no longer need them.',
           mbInformation, MB_OK);
end;
