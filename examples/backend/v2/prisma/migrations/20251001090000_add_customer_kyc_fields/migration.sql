-- AlterTable
ALTER TABLE "customers" ADD COLUMN     "kyc_status" TEXT NOT NULL DEFAULT 'unverified',
ADD COLUMN     "kyc_verified_at" TIMESTAMP(3),
ADD COLUMN     "kyc_provider" TEXT;
