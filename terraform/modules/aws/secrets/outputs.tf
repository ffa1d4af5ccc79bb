output "gmail_credentials_secret_arn" {
  description = "Secret to fill with the Gmail credentials JSON before the Gmail services start."
  value       = aws_secretsmanager_secret.gmail_credentials.arn
}
