# On Windows: build the one-folder app with PyInstaller in a clean Python 3.11 environment
# (pinned requirements), self-check it, sign it when a certificate is given, then build the
# installer with Inno Setup 6 (iscc on PATH): dist\DesktopBackup-Setup-<version>.exe
#
#   powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1
#   $env:SIGN_PFX = "C:\path\cert.pfx"; $env:SIGN_PFX_PASSWORD = "..."   # optional: sign
#
# $ErrorActionPreference does not see native programs' exit codes: each one is checked.
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")

function Invoke-Native([string] $What, [scriptblock] $Command) {
    & $Command
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit code $LASTEXITCODE)" }
}

$python = if ($env:PYTHON) { $env:PYTHON } else { "py" }
$pythonArgs = if ($env:PYTHON) { @() } else { @("-3.11") }
$venv = "build\venv-windows"
foreach ($old in @("dist", "build\pyinstaller", $venv)) {
    if (Test-Path $old) { Remove-Item -Recurse -Force $old }
}
Invoke-Native "creating the build environment" { & $python @pythonArgs -m venv $venv }
$py = Join-Path $venv "Scripts\python.exe"
Invoke-Native "pip (pinned requirements)" {
    & $py -m pip install --quiet --only-binary=:all: -r installer\requirements.txt
}
Invoke-Native "pip (desktop-backup)" { & $py -m pip install --quiet --no-deps . }
$version = & $py -c "import desktop_backup; print(desktop_backup.__version__)"
if ($LASTEXITCODE -ne 0 -or -not $version) { throw "could not read the version" }

Invoke-Native "PyInstaller" {
    & $py -m PyInstaller installer\desktop-backup.spec --noconfirm --clean --distpath dist --workpath build\pyinstaller
}
# The console twin: desktop-backup.exe is a window app, which cannot print. No
# QT_QPA_PLATFORM: the self-check starts the "windows" platform the app really uses.
Invoke-Native "the self-check" { & dist\desktop-backup\desktop-backup-cli.exe --self-check }

$isccArgs = @("/DAppVersion=$version")
if ($env:SIGN_PFX) {
    $signtool = (Get-Command signtool.exe -ErrorAction SilentlyContinue).Source
    if (-not $signtool) {
        $signtool = Get-ChildItem "${env:ProgramFiles(x86)}\Windows Kits\10\bin\*\x64\signtool.exe" |
            Sort-Object FullName | Select-Object -Last 1 -ExpandProperty FullName
    }
    if (-not $signtool) { throw "SIGN_PFX is set but signtool.exe was not found" }
    $signArgs = @("sign", "/fd", "sha256", "/td", "sha256", "/tr", "http://timestamp.digicert.com",
                  "/f", $env:SIGN_PFX, "/p", $env:SIGN_PFX_PASSWORD)
    foreach ($exe in Get-ChildItem dist\desktop-backup\*.exe) {
        Invoke-Native "signing $($exe.Name)" { & $signtool @signArgs $exe.FullName }
    }
    # Inno Setup signs the setup and the uninstaller with this command; $q is a quote and
    # $f the file, replaced by iscc itself.
    $isccArgs += @("/DSign", ("/Ssigntool=`$q$signtool`$q sign /fd sha256 /td sha256 " +
        "/tr http://timestamp.digicert.com /f `$q$($env:SIGN_PFX)`$q " +
        "/p `$q$($env:SIGN_PFX_PASSWORD)`$q `$f"))
}
Invoke-Native "Inno Setup (iscc)" { iscc @isccArgs installer\windows\desktop-backup.iss }
$setup = "dist\DesktopBackup-Setup-$version.exe"
if (-not (Test-Path $setup)) { throw "iscc reported success but $setup is missing" }
Write-Output $setup
