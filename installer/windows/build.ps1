# On Windows: build the one-folder app with PyInstaller, self-check it, then the installer
# with Inno Setup 6 (iscc on PATH): dist\DesktopBackup-Setup-<version>.exe
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
if (-not (Test-Path .venv)) { py -3.11 -m venv .venv }
.venv\Scripts\python -m pip install --quiet -e . "pyinstaller>=6.10,<7"
.venv\Scripts\python -m PyInstaller installer\desktop-backup.spec --noconfirm --clean --distpath dist --workpath build\pyinstaller
$env:QT_QPA_PLATFORM = "offscreen"
# The console twin: desktop-backup.exe is a window app, which cannot print.
dist\desktop-backup\desktop-backup-cli.exe --self-check
if ($LASTEXITCODE -ne 0) { throw "self-check failed" }
Remove-Item Env:QT_QPA_PLATFORM
iscc installer\windows\desktop-backup.iss
