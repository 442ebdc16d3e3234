-- AlterTable
ALTER TABLE "subscriptions" ADD COLUMN     "auto_renew" BOOLEAN NOT NULL DEFAULT true,
ADD COLUMN     "renewal_attempts" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "last_renewal_at" TIMESTAMP(3);
