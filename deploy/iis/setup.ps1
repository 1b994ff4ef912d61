<#
.SYNOPSIS
  Installs or updates the CRM on Windows Server 2016/2019/2022 with IIS 10 and wfastcgi.

.DESCRIPTION
  Run from an elevated PowerShell in the project folder (e.g. C:\crm), after installing Python 3.11+
  (python.org installer, "for all users") and MySQL 8 / MariaDB:

    powershell -ExecutionPolicy Bypass -File deploy\iis\setup.ps1 -HostName crm.example.com

  Steps (each is safe to repeat; run the script again after every update of the code):
    1. optional: install the IIS features (-InstallIisFeatures)
    2. .venv with pip install -e ".[mysql,windows]"
    3. .env: created from deploy\env.production.example with fresh secrets on the first run; the
       script then stops so that you can edit DATABASE_URL, ALLOWED_HOSTS, e-mail ...
    4. wfastcgi-enable, migrate, create_audit_key, collectstatic, check --deploy
    5. IIS: application pool (no managed code), site with wwwroot\web.config, /static virtual directory,
       HTTP binding, and an HTTPS binding when -CertificateThumbprint is given
    6. file permissions for the application pool identity
    7. Celery worker and beat (only when CELERY_BROKER_URL is set in .env): Windows services through
       NSSM (-Worker nssm, default when nssm.exe is found) or scheduled tasks at start-up (-Worker task).
       Workers on Windows must use --pool=solo (or threads).
#>
[CmdletBinding()]
param(
    [string]$InstallDir = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path,
    [string]$SiteName = "CRM",
    [string]$HostName = "",
    [int]$HttpPort = 80,
    [int]$HttpsPort = 443,
    [string]$CertificateThumbprint = "",
    [string]$Python = "py",
    [string[]]$PythonArgs = @("-3.11"),
    [ValidateSet("auto", "nssm", "task", "none")]
    [string]$Worker = "auto",
    [string]$Nssm = "nssm.exe",
    [switch]$InstallIisFeatures
)

$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

function Step($text) { Write-Host "`n==> $text" -ForegroundColor Cyan }
function Invoke-Checked {
    param([string]$File, [string[]]$Arguments)
    & $File @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$File $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw "Run this script from an elevated PowerShell (Run as administrator)."
}

Set-Location $InstallDir
$Venv = Join-Path $InstallDir ".venv"
$VPy = Join-Path $Venv "Scripts\python.exe"
$AppCmd = Join-Path $env:windir "System32\inetsrv\appcmd.exe"
$Logs = Join-Path $InstallDir "logs"
$WwwRoot = Join-Path $InstallDir "wwwroot"
New-Item -ItemType Directory -Force -Path $Logs, $WwwRoot | Out-Null

# 1. IIS features ---------------------------------------------------------------------------------------
if ($InstallIisFeatures) {
    Step "Installing IIS with CGI/FastCGI, static content and compression"
    Install-WindowsFeature -Name Web-Server, Web-CGI, Web-Static-Content, Web-Http-Errors, `
        Web-Stat-Compression, Web-Http-Logging, Web-Request-Monitor, Web-Filtering, Web-Mgmt-Console | Out-Null
}
if (-not (Test-Path $AppCmd)) { throw "IIS is not installed (run again with -InstallIisFeatures)." }

# 2. Python environment ----------------------------------------------------------------------------------
if (-not (Test-Path $VPy)) {
    Step "Creating the virtual environment"
    Invoke-Checked $Python ($PythonArgs + @("-m", "venv", $Venv))
}
Step "Installing the CRM with the mysql and windows extras"
Invoke-Checked $VPy @("-m", "pip", "install", "--upgrade", "pip")
Invoke-Checked $VPy @("-m", "pip", "install", "-e", ".[mysql,windows]")

# 3. Configuration -----------------------------------------------------------------------------------------
$EnvFile = Join-Path $InstallDir ".env"
if (-not (Test-Path $EnvFile)) {
    Step "Creating .env from deploy\env.production.example with fresh secrets"
    $code = @'
import base64, os, re, secrets, sys
text = open(r"deploy/env.production.example", encoding="utf-8").read()
text = re.sub(r"(?m)^SECRET_KEY=.*$", "SECRET_KEY=" + secrets.token_urlsafe(50), text)
text = re.sub(r"(?m)^FIELD_ENCRYPTION_KEYS=.*$",
              "FIELD_ENCRYPTION_KEYS=1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(), text)
text = re.sub(r"(?m)^BLIND_INDEX_KEY=.*$", "BLIND_INDEX_KEY=" + base64.urlsafe_b64encode(os.urandom(32)).decode(), text)
root = sys.argv[1].replace("\\", "/")
for name, sub in (("STATIC_ROOT", "staticfiles"), ("MEDIA_ROOT", "media"), ("AUDIT_SIGNING_KEY_PATH", "keys/audit_ed25519.pem")):
    text = re.sub(rf"(?m)^{name}=.*$", f"{name}={root}/{sub}", text)
# IIS terminates HTTPS itself and wfastcgi passes it on: no proxy header to trust.
text = re.sub(r"(?m)^USE_X_FORWARDED_PROTO=.*$", "USE_X_FORWARDED_PROTO=false", text)
text = re.sub(r"(?m)^PROXY_COUNT=.*$", "PROXY_COUNT=0", text)
open(".env", "w", encoding="utf-8").write(text)
'@
    Invoke-Checked $VPy @("-c", $code, $InstallDir)
    Write-Host ""
    Write-Host "Edit $EnvFile now: DATABASE_URL, ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, EMAIL_URL, Redis." -ForegroundColor Yellow
    Write-Host "Copy FIELD_ENCRYPTION_KEYS and BLIND_INDEX_KEY to a safe place: without them the data cannot be read." -ForegroundColor Yellow
    Write-Host "Then run this script again." -ForegroundColor Yellow
    exit 0
}

# 4. Django ------------------------------------------------------------------------------------------------
Step "Enabling wfastcgi in IIS"
& (Join-Path $Venv "Scripts\wfastcgi-enable.exe")  # fails harmlessly when already enabled
Step "Migrating the database and collecting static files"
Invoke-Checked $VPy @("manage.py", "migrate", "--noinput")
& $VPy manage.py help create_audit_key *> $null
if ($LASTEXITCODE -eq 0) { Invoke-Checked $VPy @("manage.py", "create_audit_key") }
Invoke-Checked $VPy @("manage.py", "collectstatic", "--noinput")
Invoke-Checked $VPy @("manage.py", "check", "--deploy", "--fail-level", "WARNING")
$StaticRoot = (& $VPy -c "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'crm.settings'); django.setup(); from django.conf import settings; print(settings.STATIC_ROOT)").Trim()
$MediaRoot = (& $VPy -c "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'crm.settings'); django.setup(); from django.conf import settings; print(settings.MEDIA_ROOT)").Trim()
$KeyPath = (& $VPy -c "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'crm.settings'); django.setup(); from django.conf import settings; print(settings.AUDIT_SIGNING_KEY_PATH)").Trim()
$Broker = (& $VPy -c "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'crm.settings'); django.setup(); from django.conf import settings; print(settings.CELERY_BROKER_URL)").Trim()
New-Item -ItemType Directory -Force -Path $MediaRoot | Out-Null

# 5. IIS site ----------------------------------------------------------------------------------------------
Step "Configuring IIS site $SiteName"
$template = Get-Content (Join-Path $PSScriptRoot "web.config") -Raw -Encoding UTF8
$template.Replace("C:\crm", $InstallDir) | Set-Content (Join-Path $WwwRoot "web.config") -Encoding UTF8
Copy-Item (Join-Path $PSScriptRoot "static-web.config") (Join-Path $StaticRoot "web.config") -Force

# handlers must be settable from web.config
& $AppCmd unlock config /section:system.webServer/handlers | Out-Null
& $AppCmd list apppool /name:$SiteName *> $null
if ($LASTEXITCODE -ne 0) {
    Invoke-Checked $AppCmd @("add", "apppool", "/name:$SiteName", "/managedRuntimeVersion:", "/managedPipelineMode:Integrated")
}
Invoke-Checked $AppCmd @("set", "apppool", "/apppool.name:$SiteName", "/processModel.idleTimeout:00:00:00", "/startMode:AlwaysRunning")
& $AppCmd list site /name:$SiteName *> $null
if ($LASTEXITCODE -ne 0) {
    Invoke-Checked $AppCmd @("add", "site", "/name:$SiteName", "/physicalPath:$WwwRoot", "/bindings:http/*:${HttpPort}:$HostName")
}
Invoke-Checked $AppCmd @("set", "site", "/site.name:$SiteName", "/[path='/'].applicationPool:$SiteName")
& $AppCmd list vdir "$SiteName/static" *> $null
if ($LASTEXITCODE -ne 0) {
    Invoke-Checked $AppCmd @("add", "vdir", "/app.name:$SiteName/", "/path:/static", "/physicalPath:$StaticRoot")
} else {
    Invoke-Checked $AppCmd @("set", "vdir", "$SiteName/static", "/physicalPath:$StaticRoot")
}
if ($CertificateThumbprint) {
    Step "Adding the HTTPS binding (SNI) for $HostName"
    & $AppCmd set site /site.name:$SiteName "/+bindings.[protocol='https',bindingInformation='*:${HttpsPort}:$HostName']" *> $null
    & netsh http delete sslcert hostnameport="${HostName}:$HttpsPort" *> $null
    Invoke-Checked netsh @("http", "add", "sslcert", "hostnameport=${HostName}:$HttpsPort",
        "certhash=$CertificateThumbprint", "certstorename=MY", "appid={4dc3e181-e14b-4a21-b022-59fc669b0914}")
}

# 6. Permissions -------------------------------------------------------------------------------------------
Step "Granting the application pool identity access"
$Identity = "IIS AppPool\$SiteName"
Invoke-Checked icacls @($InstallDir, "/grant", "${Identity}:(OI)(CI)RX", "/T", "/Q")
Invoke-Checked icacls @($Logs, "/grant", "${Identity}:(OI)(CI)M", "/Q")
Invoke-Checked icacls @($MediaRoot, "/grant", "${Identity}:(OI)(CI)M", "/Q")
Invoke-Checked icacls @($EnvFile, "/inheritance:r", "/grant:r", "${Identity}:R", "Administrators:F", "SYSTEM:F", "/Q")
if (Test-Path $KeyPath) {
    Invoke-Checked icacls @($KeyPath, "/inheritance:r", "/grant:r", "${Identity}:R", "Administrators:F", "SYSTEM:F", "/Q")
}
if (Select-String -Path $EnvFile -Pattern '^DATABASE_URL=sqlite' -Quiet) {
    Invoke-Checked icacls @($InstallDir, "/grant", "${Identity}:(OI)(CI)M", "/Q")  # SQLite writes next to the file
}
Invoke-Checked $AppCmd @("recycle", "apppool", "/apppool.name:$SiteName")

# 7. Celery ------------------------------------------------------------------------------------------------
$Celery = Join-Path $Venv "Scripts\celery.exe"
if (-not $Broker) {
    Write-Host "CELERY_BROKER_URL is empty: background tasks run inside IIS; no worker installed."
} else {
    if ($Worker -eq "auto") { $Worker = $(if (Get-Command $Nssm -ErrorAction SilentlyContinue) { "nssm" } else { "task" }) }
    $services = @{
        "CRM-Worker" = "-A crm worker -l info --pool=solo --hostname=worker@%h";
        "CRM-Beat"   = "-A crm beat -l info";   # exactly one beat for the whole installation
    }
    foreach ($name in $services.Keys) {
        $arguments = $services[$name]
        if ($Worker -eq "nssm") {
            Step "Windows service $name (NSSM)"
            & $Nssm status $name *> $null
            if ($LASTEXITCODE -ne 0) { Invoke-Checked $Nssm @("install", $name, $Celery, $arguments) }
            Invoke-Checked $Nssm @("set", $name, "AppParameters", $arguments)
            Invoke-Checked $Nssm @("set", $name, "AppDirectory", $InstallDir)
            Invoke-Checked $Nssm @("set", $name, "AppStdout", (Join-Path $Logs "$name.log"))
            Invoke-Checked $Nssm @("set", $name, "AppStderr", (Join-Path $Logs "$name.log"))
            Invoke-Checked $Nssm @("set", $name, "AppRotateFiles", "1")
            Invoke-Checked $Nssm @("set", $name, "AppRotateBytes", "10485760")
            Invoke-Checked $Nssm @("set", $name, "Start", "SERVICE_AUTO_START")
            & $Nssm restart $name | Out-Null
        } elseif ($Worker -eq "task") {
            Step "Scheduled task $name (runs at start-up as SYSTEM, restarts on failure)"
            $action = New-ScheduledTaskAction -Execute $Celery -Argument $arguments -WorkingDirectory $InstallDir
            $trigger = New-ScheduledTaskTrigger -AtStartup
            $settings = New-ScheduledTaskSettingsSet -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) `
                -ExecutionTimeLimit ([TimeSpan]::Zero) -StartWhenAvailable
            Register-ScheduledTask -TaskName $name -Action $action -Trigger $trigger -Settings $settings `
                -User "SYSTEM" -RunLevel Highest -Force | Out-Null
            Stop-ScheduledTask -TaskName $name -ErrorAction SilentlyContinue
            Start-ScheduledTask -TaskName $name
        }
    }
}

Step "Done"
$scheme = $(if ($CertificateThumbprint) { "https" } else { "http" })
$shownHost = $(if ($HostName) { $HostName } else { "localhost" })
Write-Host "Open ${scheme}://$shownHost/ . Create the first administrator with:"
Write-Host "  $VPy manage.py createsuperuser"
