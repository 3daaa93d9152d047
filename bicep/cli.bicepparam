// Parameters for deploying without azd: `az deployment sub create --location <region> --parameters bicep/cli.bicepparam`
// (Azure CLI 2.53 or later compiles it). Values come from the same environment variables azd uses, so one set of
// `export`s serves both. azd itself reads main.parameters.json; keep the two in step (a test checks).
using './main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME')
param location = readEnvironmentVariable('AZURE_LOCATION')
param resourceGroupName = readEnvironmentVariable('AZURE_RESOURCE_GROUP', '')
param principalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')
param principalType = readEnvironmentVariable('AZURE_PRINCIPAL_TYPE', '')
param sqlAdminObjectId = readEnvironmentVariable('SQL_ADMIN_OBJECT_ID', '')
param sqlAdminLogin = readEnvironmentVariable('SQL_ADMIN_LOGIN', '')
param sqlAdminPrincipalType = readEnvironmentVariable('SQL_ADMIN_PRINCIPAL_TYPE', '')
param payloadEncryptionKey = readEnvironmentVariable('PAYLOAD_ENCRYPTION_KEY', '')
param payloadKeySecretName = readEnvironmentVariable('PAYLOAD_KEY_SECRET_NAME', 'payload-encryption-key')
param payloadPreviousKeySecretNames = readEnvironmentVariable('PAYLOAD_PREVIOUS_KEY_SECRET_NAMES', '')
param keyVaultNameSalt = readEnvironmentVariable('KEY_VAULT_NAME_SALT', '')
param webhookKey = readEnvironmentVariable('DATAVERSE_WEBHOOK_KEY', '')
param managementKey = readEnvironmentVariable('MANAGEMENT_API_KEY', '')
param alertEmailAddress = readEnvironmentVariable('ALERT_EMAIL_ADDRESS', '')
param logLevel = readEnvironmentVariable('LOG_LEVEL', 'info')
