-- AlterTable
ALTER TABLE "customers" ADD COLUMN     "billing_email" TEXT;
