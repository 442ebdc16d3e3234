-- AlterTable
ALTER TABLE "users" ADD COLUMN     "kyc_status" TEXT NOT NULL DEFAULT 'unverified',
ADD COLUMN     "date_of_birth" DATE,
ADD COLUMN     "nin_last4" TEXT;
